import XCTest

final class PlaceholderOptimTests: XCTestCase { func testNothing() {} }
