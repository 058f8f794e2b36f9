import Foundation

/// `config.json` beside the weights: a `Codable` model configuration, read with readable errors and written atomically.
///
/// Decoding errors are translated from `DecodingError` into messages that name the file and the field's path
/// (`config.json: field 'blocks[2].hidden_size': expected Int, found String`); the type actually found is read from
/// the JSON itself. Key names are the type's `CodingKeys` (use snake_case keys there to match Hugging Face configs).
public enum ConfigFile {
    /// The conventional file name.
    public static let defaultFileName = "config.json"

    /// Decodes `type` from `folder/fileName`.
    /// - Throws: `CheckpointError.invalidConfig` naming the file and the field, or `.io` when it cannot be read.
    public static func read<T: Decodable>(
        _ type: T.Type, from folder: URL, fileName: String = defaultFileName, decoder: JSONDecoder = JSONDecoder()
    ) throws -> T {
        let url = folder.appendingPathComponent(fileName)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CheckpointError.io(file: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(type, from: data, file: url.path, decoder: decoder)
    }

    /// Decodes `type` from `data` (the content of `file`, named in errors).
    public static func decode<T: Decodable>(
        _ type: T.Type, from data: Data, file: String, decoder: JSONDecoder = JSONDecoder()
    ) throws -> T {
        // Our own parser first: it reports syntax errors with a line and column, and gives the found types below.
        let bytes = Array(data)
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch let error as JSONSyntaxError {
            let prefix = bytes.prefix(error.offset)
            let line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
            let column = error.offset - (prefix.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
            throw CheckpointError.invalidConfig(
                file: file, field: "", reason: "invalid JSON at line \(line), column \(column): \(error.message)")
        }
        do {
            return try decoder.decode(type, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let (path, number) = numberThatDoesNotFit(type, json: json, decoder: decoder)
            {
                throw CheckpointError.invalidConfig(
                    file: file, field: path, reason: "number \(number) does not fit the field's type")
            }
            throw translate(error, json: json, file: file)
        }
    }

    /// The field whose number breaks decoding, found by elimination.
    ///
    /// Foundation's `JSONDecoder` reports a number that does not fit its field (2.5 or 1e30 for an `Int`) as "not
    /// valid JSON" with no coding path. The JSON is known to be valid here, so each number is replaced by 0 in turn;
    /// the first whose replacement makes that error go away is the culprit.
    private static func numberThatDoesNotFit<T: Decodable>(
        _ type: T.Type, json: JSONValue, decoder: JSONDecoder
    ) -> (path: String, number: String)? {
        var numbers: [([JSONPathStep], String)] = []
        collectNumbers(json, path: [], into: &numbers)
        for (path, text) in numbers {
            let patched = replacing(json, at: path[...], with: .integer(0))
            do {
                _ = try decoder.decode(type, from: Data(PythonJSON.format(patched).utf8))
                return (describe(path), text)
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                continue
            } catch {
                return (describe(path), text)
            }
        }
        return nil
    }

    /// One step of a path into a JSON document.
    private enum JSONPathStep {
        case key(String)
        case index(Int)
    }

    private static func collectNumbers(
        _ value: JSONValue, path: [JSONPathStep], into numbers: inout [([JSONPathStep], String)]
    ) {
        switch value {
        case .integer(let n): numbers.append((path, String(n)))
        case .number(let x): numbers.append((path, "\(x)"))
        case .array(let items):
            for (i, item) in items.enumerated() { collectNumbers(item, path: path + [.index(i)], into: &numbers) }
        case .object(let members):
            for (key, item) in members { collectNumbers(item, path: path + [.key(key)], into: &numbers) }
        default: break
        }
    }

    private static func replacing(_ value: JSONValue, at path: ArraySlice<JSONPathStep>, with replacement: JSONValue)
        -> JSONValue
    {
        guard let step = path.first else { return replacement }
        switch (step, value) {
        case (.index(let i), .array(var items)):
            items[i] = replacing(items[i], at: path.dropFirst(), with: replacement)
            return .array(items)
        case (.key(let key), .object(var members)):
            let i = members.firstIndex { $0.key == key }!
            members[i].value = replacing(members[i].value, at: path.dropFirst(), with: replacement)
            return .object(members)
        default: return value
        }
    }

    private static func describe(_ path: [JSONPathStep]) -> String {
        var text = ""
        for step in path {
            switch step {
            case .index(let i): text += "[\(i)]"
            case .key(let key): text += text.isEmpty ? key : "." + key
            }
        }
        return text
    }

    /// Encodes `value` to `folder/fileName` atomically (pretty-printed, sorted keys, trailing newline).
    /// - Throws: `CheckpointError` naming the file (`.invalidConfig` when the value cannot be encoded, e.g. NaN).
    public static func write<T: Encodable>(_ value: T, to folder: URL, fileName: String = defaultFileName) throws {
        let url = folder.appendingPathComponent(fileName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data: Data
        do {
            data = try encoder.encode(value)
        } catch let error as EncodingError {
            guard case .invalidValue(_, let context) = error else { throw error }
            throw CheckpointError.invalidConfig(
                file: url.path, field: fieldPath(context.codingPath), reason: context.debugDescription)
        }
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(to: url) { writer in try writer.write(Array(data)) }
    }

    /// A readable `CheckpointError` for `error`, with the type found at the failing path read from `json`.
    static func translate(_ error: DecodingError, json: JSONValue, file: String) -> CheckpointError {
        switch error {
        case .typeMismatch(let expected, let context):
            let found = value(at: context.codingPath, in: json)?.typeName ?? "nothing"
            return .invalidConfig(
                file: file, field: fieldPath(context.codingPath),
                reason: "expected \(typeName(expected)), found \(found)")
        case .valueNotFound(let expected, let context):
            return .invalidConfig(
                file: file, field: fieldPath(context.codingPath), reason: "expected \(typeName(expected)), found null")
        case .keyNotFound(let key, let context):
            return .invalidConfig(file: file, field: fieldPath(context.codingPath + [key]), reason: "missing")
        case .dataCorrupted(let context):
            return .invalidConfig(file: file, field: fieldPath(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return .invalidConfig(file: file, field: "", reason: "\(error)")
        }
    }

    /// `a.b[2].c` for a coding path.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    /// The JSON value at `path`, or nil when the path leaves the document.
    private static func value(at path: [any CodingKey], in json: JSONValue) -> JSONValue? {
        var current = json
        for key in path {
            if let index = key.intValue, case .array(let items) = current {
                guard index >= 0 && index < items.count else { return nil }
                current = items[index]
            } else if let member = current[key.stringValue] {
                current = member
            } else {
                return nil
            }
        }
        return current
    }

    /// "Int", "String", "Array" rather than generic spellings like `Array<Any>`.
    private static func typeName(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Array<") { return "Array" }
        if name.hasPrefix("Dictionary<") { return "Object" }
        return name
    }
}

/// A coding key of any name, to list the keys an object really has.
public struct AnyCodingKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws `DecodingError.dataCorrupted` naming the first key of this JSON object that `Keys` does not list, so a
    /// misspelt config field is an error instead of a silently kept default.
    public func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_: Keys.Type) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        let container = try container(keyedBy: AnyCodingKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: codingPath + [AnyCodingKey(stringValue: unknown)],
                    debugDescription: "unknown field '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))"))
        }
    }
}

/// Why a training config file could not be read (`ConfigFile.readStrict`); each trainer words it in its own errors.
public enum ConfigReadError: Error, CustomStringConvertible {
    /// The file cannot be read.
    case unreadable(file: String, reason: String)
    /// Its top level is not a JSON object.
    case notAnObject(file: String)
    /// It has a key no field of the config is called.
    case unknownField(key: String, file: String)
    /// A field has a value of the wrong type or out of its type's range (`reason` names the field).
    case invalid(file: String, reason: String)

    /// What the error names first: the unknown key, else the file.
    public var subject: String {
        switch self {
        case let .unreadable(file, _), let .notAnObject(file), let .invalid(file, _): return file
        case let .unknownField(key, _): return key
        }
    }

    /// What is wrong with `subject`.
    public var reason: String {
        switch self {
        case let .unreadable(_, reason): return "cannot read: \(reason)"
        case .notAnObject: return "not a JSON object"
        case let .unknownField(_, file): return "unknown field in \(file)"
        case let .invalid(_, reason): return reason
        }
    }

    public var description: String { "\(subject): \(reason)" }
}

extension ConfigFile {
    /// The one way training configs are read: `url` must hold a JSON object whose keys are all in `known` (a misspelt
    /// field is an error naming it, never a silently kept default); the keys are laid over `defaults` when given (so a
    /// field left out keeps its default even where synthesized decoding would require it), and the result is decoded
    /// by `decode`, whose errors name the field's path and the type found.
    /// - Throws: `ConfigReadError`, or an error the type's own decoding throws.
    public static func readStrict<T: Codable>(_ type: T.Type, from url: URL, known: Set<String>, defaults: T?) throws -> T {
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch {
            throw ConfigReadError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            throw ConfigReadError.notAnObject(file: url.path)
        }
        if let key = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigReadError.unknownField(key: key, file: url.path)
        }
        var merged = object
        if let defaults, let base = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any] {
            merged = base
            for (key, value) in object { merged[key] = value }
        }
        do {
            return try decode(T.self, from: JSONSerialization.data(withJSONObject: merged), file: url.path)
        } catch let error as CheckpointError {
            throw ConfigReadError.invalid(file: url.path, reason: "\(error)")
        }  // a config type's own validation errors pass through as they are
    }
}
