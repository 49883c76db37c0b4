// Package models holds fsplane's data — trunks, extensions, sofia profiles,
// provider ranges, API tokens, audit events and the change log — and its
// persistence through gorm on SQLite (embedded, pure Go) or PostgreSQL.
//
// Contract:
//   - Secrets never reach a table in plain text: SIP passwords are stored as
//     Fernet tokens (see package secrets), API tokens as SHA-256 digests.
//   - Every row that can be edited carries a Version; an update names the
//     version it read and fails with ErrConflict when another writer won.
//   - Every committed write appends a ChangeEvent in the same transaction, so
//     consumers (xml-curl cache, ESL planner, other replicas) never miss one.
//   - The schema is changed only by the versioned migrations in migrations.go.
package models
