// Package secrets seals SIP passwords at rest with Fernet
// (github.com/fernet/fernet-go). Tokens are byte-compatible with Python's
// cryptography.fernet: a database written by a Python platform decrypts
// here and the other way round.
//
// A Keyring holds one or more keys, newest first: the first encrypts, all
// decrypt, which is what key rotation needs. Errors never carry a key or a
// plaintext.
package secrets
