// Package portal holds the browser tests of Runnel's web portal: Debian's
// headless Chromium, driven by puppeteer-core (js/portal.mjs), uses the
// portal as people would, and any console error, uncaught exception or
// failed request in the page fails the test. Screenshots of the main
// pages go to $RUNNEL_ARTIFACTS/portal (a new temporary directory when
// unset; the test logs its path).
//
// fake_test.go renders every page against a stand-in of the governance
// API built from the design's JSON shapes, so the portal's own failures
// show apart from the services'. flow_test.go runs the built binary with
// SASL/SCRAM and authorization: Alice finds a PII-tagged product by a
// field name and requests READ, her kcat consumer is refused, Bob (the
// owner) approves, and her kcat consumer then reads the topic; the audit
// log shows both steps.
//
// A test whose browser, node modules or kcat is missing is skipped,
// unless RUNNEL_REQUIRE_CLIENTS is set (scripts/test sets it and installs
// them). This package has no non-test code.
package portal
