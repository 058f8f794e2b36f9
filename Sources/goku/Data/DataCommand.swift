import ArgumentParser

/// `goku data`: datasets written to disk.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Write datasets to disk.",
        subcommands: [DataShapes.self, DataPrepare.self, DataPrompts.self])
}
