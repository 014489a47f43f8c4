package storage

// SetResumeReset changes resumeReset for a test and returns the undo.
func SetResumeReset(n int64) (undo func()) {
	old := resumeReset
	resumeReset = n
	return func() { resumeReset = old }
}
