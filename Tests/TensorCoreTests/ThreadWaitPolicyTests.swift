import Foundation
import TensorCore
import XCTest

/// The environment handed to child processes: the variables `ThreadWaitPolicy.useQuickSleepingThreads` set itself
/// are removed (it names them in `GOKU_THREAD_POLICY_SET`), the user's own are kept.
final class ThreadWaitPolicyTests: XCTestCase {
    func testUserEnvironmentDropsOnlyWhatThePolicySet() {
        let names = ["GOKU_THREAD_POLICY_SET", "OPENBLAS_THREAD_TIMEOUT", "GOKU_TEST_POLICY_SET_VAR", "GOKU_TEST_USER_VAR"]
        let saved = names.map { ($0, getenv($0).map { String(cString: $0) }) }
        defer {
            for (name, value) in saved {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        setenv("GOKU_THREAD_POLICY_SET", "OPENBLAS_THREAD_TIMEOUT,GOKU_TEST_POLICY_SET_VAR", 1)
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        setenv("GOKU_TEST_POLICY_SET_VAR", "x", 1)
        setenv("GOKU_TEST_USER_VAR", "kept", 1)
        let env = ThreadWaitPolicy.userEnvironment()
        XCTAssertNil(env["GOKU_THREAD_POLICY_SET"])
        XCTAssertNil(env["OPENBLAS_THREAD_TIMEOUT"])
        XCTAssertNil(env["GOKU_TEST_POLICY_SET_VAR"])
        XCTAssertEqual(env["GOKU_TEST_USER_VAR"], "kept")

        // Nothing set by the policy: the environment as it is.
        unsetenv("GOKU_THREAD_POLICY_SET")
        XCTAssertEqual(ThreadWaitPolicy.userEnvironment()["OPENBLAS_THREAD_TIMEOUT"], "4")
    }
}
