// Package objstoretest is the conformance suite every objstore.Store
// implementation must pass: the file, memory and S3 stores, and decorators
// such as faultstore when they inject nothing. It owns no implementation and
// must never depend on one.
package objstoretest
