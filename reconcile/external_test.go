package reconcile

// What the tests of package reconcile_test (which may import the sandbox)
// use from the package's own tests.

// RandomAccount is a small random account in which users are scarce.
var RandomAccount = planRandomAccount

// RandomSpec lists a random subset of an account's registrations with
// random targets; it also returns the target it asks of each, and the
// "file:line" of the entry that asks it.
var RandomSpec = planRandomSpec

// JournalWithoutSync stops j from syncing its lines to disk: for tests
// that write many journals and simulate a crash by cutting the file.
func JournalWithoutSync(j *Journal) { j.noSync = true }
