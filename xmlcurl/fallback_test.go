package xmlcurl

import (
	"context"
	"testing"

	"github.com/fsplane/fsplane/models"
)

// With fsplane's registrar configured, a user's dial-string rings its
// FreeSWITCH registration and, when there is none (sofia_contact's
// error/user_not_registered fails the leg), the registrar's: the "|"
// failover leg to the AOR through the registrar as outbound proxy.
func TestDialStringFallsBackToRegistrar(t *testing.T) {
	const fallback = "sofia/internal/sip:${dialed_user}@${dialed_domain};fs_path=<sip:127.0.0.1:5070;lr>"
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{}, DefaultDialString},
		{Options{FallbackDialString: fallback}, DefaultDialString + "|" + fallback},
	} {
		f := newFixture(t, "sqlite", tc.opt)
		if err := f.s.CreateExtension(context.Background(), &models.Extension{Domain: "pbx.example.com", UserID: "2000",
			Password: ptr("dial-secret"), Context: "default", Enabled: true}); err != nil {
			t.Fatal(err)
		}
		code, answer := f.post(t, sipAuth("2000", "pbx.example.com"))
		if code != 200 {
			t.Fatalf("status %d: %s", code, answer)
		}
		got, ok := paramValue(parseDoc(t, answer), "//user/params/param", "dial-string")
		if !ok || got != tc.want {
			t.Fatalf("dial-string %q, want %q:\n%s", got, tc.want, answer)
		}
	}
}
