package models

import "time"

// Glue that lets the generic create/update/delete in crud.go handle each
// table. cosmetic lists the columns FreeSWITCH never sees: changing only
// those needs no FreeSWITCH command.

func (t *Trunk) rowID() uint       { return t.ID }
func (t *Trunk) rowVersion() int64 { return t.Version }
func (t *Trunk) created() time.Time {
	return t.CreatedAt
}
func (t *Trunk) setMeta(id uint, v int64, c time.Time) {
	t.ID, t.Version, t.CreatedAt = id, v, c
}
func (t *Trunk) secret() (*string, *string) { return t.Password, &t.PasswordEnc }
func (t *Trunk) info() eventInfo {
	return eventInfo{kind: KindTrunk, name: t.Name, profile: t.Profile, enabled: t.Enabled,
		register: t.Register, cosmetic: []string{"description", "numbers"}}
}

func (e *Extension) rowID() uint       { return e.ID }
func (e *Extension) rowVersion() int64 { return e.Version }
func (e *Extension) created() time.Time {
	return e.CreatedAt
}
func (e *Extension) setMeta(id uint, v int64, c time.Time) {
	e.ID, e.Version, e.CreatedAt = id, v, c
}
func (e *Extension) secret() (*string, *string) { return e.Password, &e.PasswordEnc }
func (e *Extension) info() eventInfo {
	return eventInfo{kind: KindExtension, name: e.UserID + "@" + e.Domain, enabled: e.Enabled,
		cosmetic: []string{"description"}}
}

func (p *Profile) rowID() uint       { return p.ID }
func (p *Profile) rowVersion() int64 { return p.Version }
func (p *Profile) created() time.Time {
	return p.CreatedAt
}
func (p *Profile) setMeta(id uint, v int64, c time.Time) {
	p.ID, p.Version, p.CreatedAt = id, v, c
}
func (p *Profile) secret() (*string, *string) { return nil, nil }
func (p *Profile) info() eventInfo {
	return eventInfo{kind: KindProfile, name: p.Name, profile: p.Name, enabled: true,
		cosmetic: []string{"description"}}
}

func (r *ProviderRange) rowID() uint       { return r.ID }
func (r *ProviderRange) rowVersion() int64 { return r.Version }
func (r *ProviderRange) created() time.Time {
	return r.CreatedAt
}
func (r *ProviderRange) setMeta(id uint, v int64, c time.Time) {
	r.ID, r.Version, r.CreatedAt = id, v, c
}
func (r *ProviderRange) secret() (*string, *string) { return nil, nil }
func (r *ProviderRange) info() eventInfo {
	return eventInfo{kind: KindProviderRange, name: r.Provider, enabled: true,
		cosmetic: []string{"description"}}
}
