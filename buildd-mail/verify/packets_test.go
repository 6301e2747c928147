package verify

import (
	"reflect"
	"testing"
)

func TestPacketTags(t *testing.T) {
	sig := append([]byte{0xc2, 3}, 4, 0, 1)     // new format, tag 2, 3 bytes
	oldSig := append([]byte{0x88, 3}, 4, 0, 1)  // old format, tag 2, 1-byte length
	old2 := append([]byte{0x89, 0, 3}, 4, 0, 1) // old format, tag 2, 2-byte length
	marker := []byte{0xca, 3, 'P', 'G', 'P'}
	for _, c := range []struct {
		name string
		in   []byte
		want []int
		err  bool
	}{
		{"new format", sig, []int{2}, false},
		{"old format", oldSig, []int{2}, false},
		{"old format 2-byte length", old2, []int{2}, false},
		{"trailing marker", append(append([]byte{}, sig...), marker...), []int{2, 10}, false},
		{"twice", append(append([]byte{}, sig...), oldSig...), []int{2, 2}, false},
		{"five-octet length", []byte{0xc2, 255, 0, 0, 0, 1, 0}, []int{2}, false},
		{"not a header", []byte{0x02, 1, 0}, nil, true},
		{"truncated body", []byte{0xc2, 9, 1}, nil, true},
		{"truncated header", []byte{0xc2}, nil, true},
		{"partial length", []byte{0xc2, 224, 0}, nil, true},
		{"indeterminate length", []byte{0x8b, 0}, nil, true},
	} {
		got, err := packetTags(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, %v; want %v, error %v", c.name, got, err, c.want, c.err)
		}
	}
}
