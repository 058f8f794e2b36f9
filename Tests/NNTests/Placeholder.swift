import XCTest

final class PlaceholderNNTests: XCTestCase { func testNothing() {} }
