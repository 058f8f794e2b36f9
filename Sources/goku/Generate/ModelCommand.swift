import ArgumentParser
import Checkpoint
import Foundation
import GokuPipeline
import TensorCore
import VideoVAE

/// `goku model …`: work on model folders.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Assemble model folders.", subcommands: [ModelReplaceDecoder.self])
}

/// `goku model replace-decoder --model DIR --vae VAE -o OUT`: a copy of a model folder that decodes with another VAE
/// of the same encoder, e.g. one whose decoder `goku vae train` trained further with `trainEncoder` false.
struct ModelReplaceDecoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replace-decoder",
        abstract: "Copy a model folder with another VAE of the same encoder (a decoder trained further).",
        discussion: """
            The VAE must have the model's encoder weights and latent scaling (checked): the transformer's samples \
            are latents of that encoder. The copy is written beside OUT and then moved into place, replacing an \
            existing model folder there; weights are stored in bfloat16 as `goku train` exports them.
            """)

    @Option(help: "Model folder; default: the shipped model.")
    var model: String?

    @Option(help: "VAE folder (diffusers layout) whose decoder the copy uses.")
    var vae: String

    @Option(name: [.short, .customLong("output")], help: "Model folder to write.")
    var output: String

    func run() throws {
        let sourceFolder = try DefaultModel.resolve(model)
        let source = try GokuModelBundle.load(from: sourceFolder)
        let replaced = try source.replacingDecoder(with: VideoAutoencoder.load(from: URL(fileURLWithPath: vae)))
        let target = URL(fileURLWithPath: output).standardizedFileURL
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        let exists = fm.fileExists(atPath: target.path, isDirectory: &isFolder)
        if exists && !(isFolder.boolValue
            && fm.fileExists(atPath: target.appendingPathComponent(GokuModelBundle.Layout.index).path))
        {
            throw GokuPipelineError.invalidOption(
                option: "output", reason: "'\(output)' exists and is not a model folder; not replacing it")
        }
        let staging = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).partial")
        try? fm.removeItem(at: staging)
        try replaced.save(to: staging, weightsDType: .bfloat16)
        try AtomicFile.replaceFolder(target, with: staging)
        print("wrote \(target.path): the model of \(sourceFolder.path), decoding with \(vae)")
    }
}
