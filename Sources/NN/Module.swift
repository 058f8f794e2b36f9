import TensorCore

/// A layer or model: a tree of named parameters and child modules.
///
/// Parameters and children are found by reflection over stored properties. Their checkpoint keys are the PyTorch /
/// Hugging Face key paths (`blocks.0.attn.q_proj.weight`): a property's key is its Swift name unless it is declared
/// with `@ModuleInfo(key:)` / `@ParameterInfo(key:)`, which pins the key where the Swift name differs
/// (`@ModuleInfo(key: "q_proj") var queryProjection`). Arrays of modules number their elements (`blocks.0`).
/// Conform by being a class with stored `Tensor`, `Module` and `[Module]` properties and a `callAsFunction`.
public protocol Module: AnyObject {}

/// Something reflection descends into: a module, an array of modules, or a property wrapper around either.
protocol ModuleChildren {
    var childModules: [(key: String?, module: Module)] { get }
}

extension Array: ModuleChildren where Element: Module {
    var childModules: [(key: String?, module: Module)] { enumerated().map { (String($0.offset), $0.element) } }
}

extension Optional: ModuleChildren where Wrapped: Module {
    var childModules: [(key: String?, module: Module)] { map { [(nil, $0)] } ?? [] }
}

/// A child module (or array of modules) with an explicit checkpoint key.
@propertyWrapper
public final class ModuleInfo<Value> {
    /// The checkpoint key of this child; nil uses the property's name.
    public let key: String?
    /// Set at declaration or, for `@ModuleInfo(key:) var x: T` without a value, in the owner's `init`.
    var value: Value?

    public var wrappedValue: Value {
        get {
            guard let value else { preconditionFailure("ModuleInfo(\(key ?? "")): read before it was assigned") }
            return value
        }
        set { value = newValue }
    }

    public init(wrappedValue: Value, key: String? = nil) {
        value = wrappedValue
        self.key = key
    }

    /// A child assigned later, in the owner's initialiser.
    public init(key: String?) {
        self.key = key
    }
}

/// A parameter tensor with an explicit checkpoint key.
@propertyWrapper
public final class ParameterInfo {
    /// The checkpoint key of this parameter; nil uses the property's name.
    public let key: String?
    public var wrappedValue: Tensor

    public init(wrappedValue: Tensor, key: String? = nil) {
        self.wrappedValue = wrappedValue
        self.key = key
    }
}

/// Which of a module's properties reflection reports.
enum ModuleEntry {
    case parameter(String, Tensor)
    case optionalParameter(String, Tensor?)
    case children(String, [(key: String?, module: Module)])
}

extension Module {
    /// The module's own entries (not recursive), in declaration order.
    func entries() -> [ModuleEntry] {
        var result: [ModuleEntry] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [[ModuleEntry]] = []
        while let m = mirror {
            var level: [ModuleEntry] = []
            for child in m.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") { label.removeFirst() }
                switch child.value {
                case let t as Tensor: level.append(.parameter(label, t))
                case let t as Tensor?: level.append(.optionalParameter(label, t))
                case let p as ParameterInfo: level.append(.parameter(p.key ?? label, p.wrappedValue))
                case let m as Module: level.append(.children(label, [(nil, m)]))
                case let c as ModuleChildren: level.append(.children(label, c.childModules))
                default:
                    let inner = Mirror(reflecting: child.value)
                    if inner.displayStyle == .class, let keyChild = inner.children.first(where: { $0.label == "key" }),
                        let valueChild = inner.children.first(where: { $0.label == "value" })
                    {
                        let key = (keyChild.value as? String?) ?? nil
                        let name = key ?? label
                        switch valueChild.value {
                        case let m as Module: level.append(.children(name, [(nil, m)]))
                        case let c as ModuleChildren: level.append(.children(name, c.childModules))
                        default: break
                        }
                    }
                }
            }
            levels.append(level)
            mirror = m.superclassMirror
        }
        // Superclass properties first, as they are declared first.
        for level in levels.reversed() { result += level }
        return result
    }

    /// Every parameter of the tree with its dotted key path, in declaration order.
    public func namedParameters() -> [(key: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        func visit(_ module: Module, prefix: String) {
            for entry in module.entries() {
                switch entry {
                case .parameter(let name, let t): out.append((prefix + name, t))
                case .optionalParameter(let name, let t): if let t { out.append((prefix + name, t)) }
                case .children(let name, let children):
                    for (key, child) in children {
                        visit(child, prefix: prefix + name + "." + (key.map { $0 + "." } ?? ""))
                    }
                }
            }
        }
        visit(self, prefix: "")
        return out
    }

    /// Parameters as a dictionary keyed by path.
    public func parameterDictionary() -> [String: Tensor] {
        Dictionary(namedParameters().map { ($0.key, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// The parameters that gradients flow into.
    public func trainableParameters() -> [Tensor] { namedParameters().map(\.tensor).filter(\.requiresGrad) }

    /// Every module of the tree (this one first), depth first.
    public func modules() -> [Module] {
        var out: [Module] = [self]
        for entry in entries() {
            if case .children(_, let children) = entry { for (_, c) in children { out += c.modules() } }
        }
        return out
    }

    /// Total number of parameter elements.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }

    /// Marks every parameter as trainable or frozen.
    public func setTrainable(_ trainable: Bool) {
        for (_, t) in namedParameters() { t.requiresGrad = trainable }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() {
        for (_, t) in namedParameters() { t.grad = nil }
    }

    /// Switches training behaviour (dropout) on or off for the whole tree.
    public func setTraining(_ training: Bool) {
        for case let m as TrainingModeAware in modules() { m.isTraining = training }
    }

    /// Copies `tensors` into the parameters with the same keys (converting dtypes).
    /// - Parameter strict: when true, missing and unexpected keys are errors; mis-shaped keys always are.
    /// - Throws: `ModuleLoadError` listing every missing, unexpected and mis-shaped key at once.
    public func load(_ tensors: [String: Tensor], strict: Bool = true) throws {
        let params = namedParameters()
        let own = Set(params.map(\.key))
        var error = ModuleLoadError()
        for (key, p) in params {
            guard let t = tensors[key] else {
                if strict { error.missing.append(key) }
                continue
            }
            if t.shape != p.shape { error.misShaped.append((key, expected: p.shape, found: t.shape)) }
        }
        if strict { error.unexpected = tensors.keys.filter { !own.contains($0) }.sorted() }
        if !error.isEmpty { throw error }
        for (key, p) in params { if let t = tensors[key] { p.assign(t) } }
    }
}

/// Modules whose behaviour differs between training and inference.
public protocol TrainingModeAware: AnyObject {
    var isTraining: Bool { get set }
}

/// Keys that did not line up when loading parameters into a module.
public struct ModuleLoadError: Error, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var misShaped: [(key: String, expected: [Int], found: [Int])] = []

    var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty }

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing keys: \(missing.prefix(20).joined(separator: ", "))\(missing.count > 20 ? " … (\(missing.count))" : "")") }
        if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.prefix(20).joined(separator: ", "))\(unexpected.count > 20 ? " … (\(unexpected.count))" : "")") }
        for m in misShaped.prefix(20) { parts.append("'\(m.key)' has shape \(m.found), expected \(m.expected)") }
        return "weights do not match the model: " + parts.joined(separator: "; ")
    }
}
