package node

import (
	"strings"
	"testing"
)

func TestReservedKeysRefused(t *testing.T) {
	n := &Node{cfg: Config{MaxKey: 1024}}
	for _, key := range []string{ReservedPrefix + "svc/web", "\x00", "\x00other"} {
		err := n.checkKey(key)
		if err == nil || codeOf(err) != 400 || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("checkKey(%q) = %v, want a 400 naming the reserved key space", key, err)
		}
	}
	for _, key := range []string{"roost/svc/web", "a\x00b", "users.1"} {
		if err := n.checkKey(key); err != nil {
			t.Errorf("checkKey(%q) = %v, want nil", key, err)
		}
	}
	if k := reservedKey("svc", "web"); !reserved(k) {
		t.Errorf("reservedKey gave %q, which reserved() does not recognise", k)
	}
}
