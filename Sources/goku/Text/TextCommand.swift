import ArgumentParser
import Checkpoint
import Foundation
import TensorCore
import TextEncoder

/// `goku text`: the T5 text encoder.
struct TextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text", abstract: "The T5 text encoder (tokenizer and encoder).",
        subcommands: [TextEncode.self, TextTokenize.self])
}

/// `goku text encode`: one prompt to T5 hidden states in a safetensors file.
struct TextEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Encode a prompt with a T5 encoder folder; writes hidden_states (L, D) and attention_mask (L).")

    @Option(help: "Hugging Face T5 folder: config.json, model.safetensors (or a sharded index), tokenizer.json or spiece.model.")
    var model: String

    @Option(help: "The text to encode.")
    var prompt: String

    @Option(help: "Tokens kept, </s> included; the output is padded to this length (the paper does not state Goku's; 128 here).")
    var maxLength: Int = 128

    @Option(help: "The safetensors file to write (atomically).")
    var output: String

    func validate() throws {
        guard maxLength > 0 else { throw ValidationError("--max-length must be positive, got \(maxLength)") }
    }

    func run() throws {
        let encoder = try T5TextEncoder.load(from: URL(fileURLWithPath: model), maxLength: maxLength)
        let (hidden, mask) = encoder.encode([prompt])
        let url = URL(fileURLWithPath: output)
        try SafeTensors.write(
            [
                "hidden_states": hidden.squeeze(0).copy(),
                "attention_mask": Tensor(shape: [maxLength], scalars: mask[0].map(Float.init)),
            ], metadata: ["format": "pt", "prompt": prompt], to: url)
        let tokens = mask[0].reduce(0, +)
        print("wrote \(output): hidden_states [\(maxLength), \(encoder.model.config.dModel)], \(tokens) tokens")
    }
}

/// `goku text tokenize`: the ids of a prompt (for checking a tokenizer).
struct TextTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the T5 token ids of a prompt.")

    @Option(help: "Folder with tokenizer.json or spiece.model.")
    var model: String

    @Option(help: "The text to tokenize.")
    var prompt: String

    @Option(help: "Truncate to this many tokens (</s> included).")
    var maxLength: Int?

    func run() throws {
        let tokenizer = try T5Tokenizer(folder: URL(fileURLWithPath: model))
        let (ids, _) = tokenizer.encode(prompt, maxLength: maxLength)
        print(ids.map(String.init).joined(separator: " "))
        print(ids.map { tokenizer.pieces[$0].piece }.joined(separator: " "))
    }
}
