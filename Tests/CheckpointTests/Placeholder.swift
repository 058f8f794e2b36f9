import XCTest

final class PlaceholderCheckpointTests: XCTestCase { func testNothing() {} }
