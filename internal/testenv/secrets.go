package testenv

// SecretValues are secret values that break hand-written env files and naive
// masking: quotes, #, =, $ references, spaces, newlines, backslashes, non-ASCII.
// Keys are valid variable names.
func SecretValues() map[string]string {
	return map[string]string{
		"PLAIN":     "s3cret-value",
		"SPACES":    "  two  spaces  ",
		"QUOTES":    `it's "quoted" and 'single'`,
		"HASH":      "pa#ss #word",
		"EQUALS":    "a=b==c",
		"DOLLAR":    "$HOME ${HOME} $$ $1 \\$X ${X:-y}",
		"NEWLINES":  "first line\nsecond line\n\nlast\n",
		"BACKSLASH": `C:\new\to\"x\\`,
		"UNICODE":   "päss→wörd 🔑",
		"TRAILBS":   `ends with \`,
	}
}
