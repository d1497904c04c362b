/// How a node status is stored in the `status` field of `node_status`: 1 ONLINE, 0 OFFLINE,
/// -1 DISCONNECTED (so that "above zero" is ONLINE for the online counts of the rollups).
public enum NodeStatusValue {
    /// The stored value of a reported status (`ONLINE`, `OFFLINE`, `DISCONNECTED`, or 1/0/-1).
    public static func value(of text: String) -> Double? {
        switch text.uppercased() {
        case "ONLINE", "1": return 1
        case "OFFLINE", "0": return 0
        case "DISCONNECTED", "-1": return -1
        default: return nil
        }
    }
}
