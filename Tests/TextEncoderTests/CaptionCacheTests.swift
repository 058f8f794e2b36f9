import Checkpoint
import Foundation
import TensorCore
import TestSupport
import XCTest

import TextEncoder

final class CaptionCacheTests: XCTestCase {
    func makeEncoder() throws -> T5TextEncoder {
        let tokenizer = try T5Tokenizer(folder: TextFixtures.folder.appendingPathComponent("tokenizer"))
        var config = T5Config.tiny
        config.vocabSize = tokenizer.vocabularySize
        return T5TextEncoder(
            tokenizer: tokenizer, model: T5EncoderModel(config: config, generator: RandomGenerator(seed: 5)),
            maxLength: 12)
    }

    func testHitsMissesAndCorruptEntriesAreRecomputed() throws {
        let encoder = try makeEncoder()
        let identity = try CaptionCache.modelIdentity(config: encoder.model.config, id: "tiny-test")
        let cache = try CaptionCache(directory: TextFixtures.temporaryFolder(), modelIdentity: identity, maxLength: 12)
        let texts = ["a large red circle moving right", "a small blue square moving left"]
        var computed = 0
        let compute = { (batch: [String]) -> (hiddenStates: Tensor, attentionMask: [[Int]]) in
            computed += batch.count
            return encoder.encode(batch)
        }
        let first = try cache.encodings(for: texts, compute: compute)
        XCTAssertEqual(computed, 2)
        let direct = encoder.encode(texts)
        expectClose(first[1].hiddenStates, direct.hiddenStates.slice(axis: 0, 1, 2).squeeze(0), rtol: 1e-6, atol: 1e-6, "")
        XCTAssertEqual(first[0].attentionMask, direct.attentionMask[0])

        let second = try cache.encodings(for: texts, compute: compute)
        XCTAssertEqual(computed, 2, "second lookup must hit the cache")
        XCTAssertEqual(cache.hitCount, 2)
        XCTAssertEqual(second[0].hiddenStates.scalars, first[0].hiddenStates.scalars)

        // Flip one byte in the data of an entry: the checksum catches it and the entry is recomputed.
        let url = cache.url(forKey: cache.key(for: texts[0]))
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[bytes.count - 60] ^= 0x40
        try Data(bytes).write(to: url)
        let third = try cache.encodings(for: texts, compute: compute)
        XCTAssertEqual(computed, 3)
        XCTAssertEqual(cache.corruptCount, 1)
        // Recomputed alone rather than in a batch of two: equal up to GEMM rounding.
        expectClose(third[0].hiddenStates, first[0].hiddenStates, rtol: 1e-5, atol: 1e-5, "recomputed entry")
        XCTAssertNotNil(cache.lookup(texts[0]), "the recomputed entry was written back")

        // A truncated file is corrupt too.
        try Data(bytes.prefix(20)).write(to: url)
        XCTAssertNil(cache.lookup(texts[0]))
        XCTAssertEqual(cache.corruptCount, 2)
    }

    func testKeyDependsOnModelTextAndLength() throws {
        let folder = try TextFixtures.temporaryFolder()
        let a = try CaptionCache.modelIdentity(config: .tiny, id: "a")
        let b = try CaptionCache.modelIdentity(config: .tiny, id: "b")
        XCTAssertNotEqual(a, b)
        let c1 = try CaptionCache(directory: folder, modelIdentity: a, maxLength: 12)
        let c2 = try CaptionCache(directory: folder, modelIdentity: a, maxLength: 16)
        let c3 = try CaptionCache(directory: folder, modelIdentity: b, maxLength: 12)
        XCTAssertNotEqual(c1.key(for: "x"), c2.key(for: "x"))
        XCTAssertNotEqual(c1.key(for: "x"), c3.key(for: "x"))
        XCTAssertNotEqual(c1.key(for: "x"), c1.key(for: "y"))
        XCTAssertEqual(c1.key(for: "x").count, 64)
        // Identity from weights: changes when one weight changes.
        let weights = TextFixtures.folder.appendingPathComponent("t5_gated")
        let config = try T5Config.read(from: weights)
        let id1 = try CaptionCache.modelIdentity(config: config, weights: StateDict.open(weights))
        let id2 = try CaptionCache.modelIdentity(config: config, weights: StateDict.open(weights))
        XCTAssertEqual(id1, id2)
        XCTAssertNotEqual(id1, try CaptionCache.modelIdentity(config: .tiny, weights: StateDict.open(weights)))
    }
}
