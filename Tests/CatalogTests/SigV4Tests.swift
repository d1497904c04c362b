import Catalog
import FlashbackWire
import Foundation
import Testing

@Suite("AWS Signature Version 4")
struct SigV4Tests {
    /// The "GET Object" example of the Amazon S3 SigV4 documentation.
    static let awsExample = SigV4.Request(
        method: "GET", path: "/test.txt", query: "",
        headers: [
            (name: "Host", value: "examplebucket.s3.amazonaws.com"),
            (name: "Range", value: "bytes=0-9"),
            (name: "x-amz-content-sha256", value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (name: "x-amz-date", value: "20130524T000000Z"),
        ])
    static let awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static let awsSignature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"

    @Test func verifiesTheDocumentedExample() throws {
        let header = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=\(Self.awsSignature)"
        let authorization = try #require(SigV4.Authorization(header: header))
        #expect(authorization.accessKeyID == "AKIAIOSFODNN7EXAMPLE")
        #expect(authorization.region == "us-east-1")
        #expect(authorization.signedHeaders == ["host", "range", "x-amz-content-sha256", "x-amz-date"])
        let now = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        try SigV4.verify(Self.awsExample, authorization: authorization, secret: Self.awsSecret, now: now)
        #expect(throws: SigV4.VerificationError.signatureMismatch) {
            try SigV4.verify(Self.awsExample, authorization: authorization, secret: Self.awsSecret + "x", now: now)
        }
        var tampered = Self.awsExample
        tampered.headers[1] = (name: "Range", value: "bytes=0-99")
        #expect(throws: SigV4.VerificationError.signatureMismatch) {
            try SigV4.verify(tampered, authorization: authorization, secret: Self.awsSecret, now: now)
        }
        #expect(throws: SigV4.VerificationError.clockSkew) {
            try SigV4.verify(Self.awsExample, authorization: authorization, secret: Self.awsSecret, now: now.addingTimeInterval(901))
        }
    }

    /// The presigned-URL example of the same documentation ("Authenticating Requests: Using Query
    /// Parameters"): valid for 86,400 s from 2013-05-24T00:00:00Z.
    @Test func verifiesTheDocumentedPresignedExample() throws {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        let request = SigV4.Request(method: "GET", path: "/test.txt", query: query, headers: [(name: "Host", value: "examplebucket.s3.amazonaws.com")])
        let presigned = try #require(SigV4.PresignedQuery(query: query))
        #expect(presigned.authorization.accessKeyID == "AKIAIOSFODNN7EXAMPLE" && presigned.expires == 86_400)
        #expect(!presigned.signedQuery.contains("X-Amz-Signature"))
        let signedAt = Date(timeIntervalSince1970: 1_369_353_600)
        try SigV4.verifyPresigned(request, presigned: presigned, secret: Self.awsSecret, now: signedAt.addingTimeInterval(3600))
        try SigV4.verifyPresigned(request, presigned: presigned, secret: Self.awsSecret, now: signedAt.addingTimeInterval(86_400))
        #expect(throws: SigV4.VerificationError.expired) {
            try SigV4.verifyPresigned(request, presigned: presigned, secret: Self.awsSecret, now: signedAt.addingTimeInterval(86_401))
        }
        #expect(throws: SigV4.VerificationError.clockSkew) {
            try SigV4.verifyPresigned(request, presigned: presigned, secret: Self.awsSecret, now: signedAt.addingTimeInterval(-901))
        }
        var other = request
        other.path = "/test2.txt"
        #expect(throws: SigV4.VerificationError.signatureMismatch) {
            try SigV4.verifyPresigned(other, presigned: presigned, secret: Self.awsSecret, now: signedAt)
        }
        // Incomplete or out-of-range query signatures are not presigned URLs at all.
        for bad in [query.replacingOccurrences(of: "X-Amz-Expires=86400", with: "X-Amz-Expires=604801"),
                    query.replacingOccurrences(of: "X-Amz-Expires=86400", with: "X-Amz-Expires=0"),
                    query.replacingOccurrences(of: "&X-Amz-SignedHeaders=host", with: ""),
                    query.replacingOccurrences(of: "AWS4-HMAC-SHA256", with: "AWS4-HMAC-SHA1"),
                    query + "&X-Amz-Date=20130524T000000Z", "list-type=2", ""] {
            #expect(SigV4.PresignedQuery(query: bad) == nil, "\(bad)")
        }
    }

    @Test func signThenVerifyRoundTrips() throws {
        var request = SigV4.Request(method: "PUT", path: "/repo/dir/a%20b%2Bc.txt", query: "partNumber=1&uploadId=x%2Fy", headers: [(name: "host", value: "127.0.0.1:9000")])
        let now = Date(timeIntervalSince1970: 1_760_000_000)
        SigV4.sign(&request, accessKeyID: "FBTESTKEY", secret: "s" + String(repeating: "e", count: 39), region: "eu-central-1", date: now)
        let header = try #require(request.headers.first { $0.name == "Authorization" }?.value)
        let authorization = try #require(SigV4.Authorization(header: header))
        try SigV4.verify(request, authorization: authorization, secret: "s" + String(repeating: "e", count: 39), now: now)
        request.path = "/repo/dir/other.txt"
        #expect(throws: SigV4.VerificationError.signatureMismatch) {
            try SigV4.verify(request, authorization: authorization, secret: "s" + String(repeating: "e", count: 39), now: now)
        }
    }

    @Test func rejectsHeadersThatAreNotSigV4() {
        #expect(SigV4.Authorization(header: "AWS AKID:signature") == nil)
        #expect(SigV4.Authorization(header: "AWS4-HMAC-SHA256 Credential=AKID/2013/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab") == nil)
        #expect(SigV4.Authorization(header: "AWS4-HMAC-SHA256 garbage") == nil)
        // Found by `flashback-fuzz sigv4`: 64 characters that are not 64 hex digits (invalid
        // UTF-8 became U+FFFD, three bytes each) passed the length check.
        let scope = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="
        let invalid = Array(scope.utf8) + Array(repeating: UInt8(ascii: "a"), count: 60) + [0x9E, 0x9E, 0x9E, 0x9E]
        #expect(SigV4.Authorization(header: String(decoding: invalid, as: UTF8.self)) == nil)
        #expect(SigV4.Authorization(header: scope + String(repeating: "g", count: 64)) == nil)
        #expect(SigV4.Authorization(header: scope + String(repeating: "A", count: 64))?.signature == String(repeating: "a", count: 64))
    }

    /// `UInt8("+1", radix: 16)` is 1: percent-decoding took a sign as a hex digit.
    @Test func percentDecodingNeedsTwoHexDigits() {
        #expect(SigV4.percentDecode("a%+1b") == "a%+1b")
        #expect(SigV4.percentDecode("%-0") == "%-0")
        #expect(SigV4.percentDecode("%2F%2f%zz%4") == "//%zz%4")
        #expect(SigV4.percentDecode("%E2%82%AC") == "€")
        #expect(SigV4.uriEncode("a b/€", keepSlash: true) == "a%20b/%E2%82%AC")
        #expect(SigV4.hex([0x00, 0xAB, 0xFF]) == "00abff")
    }
}
