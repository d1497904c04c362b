import ArgumentParser
import Configuration
import Foundation
import SystemPackage

/// Resolves each setting as flag > environment (`FLASHBACK_…`) > JSON config file > default.
///
/// Flags are parsed by swift-argument-parser as optionals (so that "not given" is visible);
/// the environment and the file are read through swift-configuration.
struct SettingsSource {
    private let reader: ConfigReader

    /// - Parameters:
    ///   - configFile: the `--config` flag; falls back to `FLASHBACK_CONFIG`.
    ///   - environment: the process environment (injectable for tests).
    init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        let env = EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["flashback"])
        var providers: [any ConfigProvider] = [env]
        if let path = configFile ?? environment["FLASHBACK_CONFIG"], !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("config file \(path) does not exist")
            }
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw ValidationError("config file \(path) is not valid JSON: \(error)")
            }
        }
        self.reader = ConfigReader(providers: providers)
    }

    /// The value of a string setting.
    func value(_ setting: Setting<String>, flag: String?) -> String {
        flag ?? reader.string(forKey: ConfigKey(setting.key)) ?? setting.defaultValue
    }

    /// The value of a setting without a default, or `nil` when no source sets it.
    func value(_ setting: Setting<String?>, flag: String?) -> String? {
        flag ?? reader.string(forKey: ConfigKey(setting.key)) ?? setting.defaultValue
    }

    /// A boolean setting; the environment accepts `true/false/1/0/yes/no/on/off`.
    func value(_ setting: Setting<Bool>, flag: Bool?) throws -> Bool {
        if let flag { return flag }
        let key = ConfigKey(setting.key)
        guard let text = reader.string(forKey: key) ?? reader.bool(forKey: key).map({ $0 ? "true" : "false" }) else {
            return setting.defaultValue
        }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ValidationError("\(setting.key) must be true or false, not \(text)")
        }
    }

    /// An integer setting.
    func value(_ setting: Setting<Int>, flag: Int?) throws -> Int {
        if let flag { return flag }
        let key = ConfigKey(setting.key)
        if let number = reader.int(forKey: key) { return number }
        guard let text = reader.string(forKey: key) else { return setting.defaultValue }
        guard let number = Int(text) else { throw ValidationError("\(setting.key) must be an integer, not \(text)") }
        return number
    }

    /// A repeatable setting: the flags when any is given, else a JSON array (or one string) from
    /// the config file, else a comma-separated environment value.
    func values(_ setting: Setting<[String]>, flags: [String]) -> [String] {
        if !flags.isEmpty { return flags }
        let key = ConfigKey(setting.key)
        if let array = reader.stringArray(forKey: key) { return array }
        if let text = reader.string(forKey: key) {
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return setting.defaultValue
    }
}
