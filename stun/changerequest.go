package stun

import (
	"encoding/binary"

	"github.com/pion/stun/v3"
)

// ChangeRequest is the CHANGE-REQUEST attribute (RFC 5780 §7.2, RFC 3489
// §11.2.4): ask the server to answer from its other IP and/or port. It is
// a stun.Setter and stun.Getter, like pion's own attributes.
type ChangeRequest struct {
	ChangeIP   bool
	ChangePort bool
}

const (
	changeIPFlag   = 0x04
	changePortFlag = 0x02
	changeReqSize  = 4
)

// AddTo adds CHANGE-REQUEST to m.
func (c ChangeRequest) AddTo(m *stun.Message) error {
	var v [changeReqSize]byte
	if c.ChangeIP {
		v[3] |= changeIPFlag
	}
	if c.ChangePort {
		v[3] |= changePortFlag
	}
	m.Add(stun.AttrChangeRequest, v[:])
	return nil
}

// GetFrom decodes CHANGE-REQUEST from m.
func (c *ChangeRequest) GetFrom(m *stun.Message) error {
	v, err := m.Get(stun.AttrChangeRequest)
	if err != nil {
		return err
	}
	return c.decode(v)
}

func (c *ChangeRequest) decode(v []byte) error {
	if len(v) != changeReqSize {
		return ErrChangeRequestSize
	}
	f := binary.BigEndian.Uint32(v)
	c.ChangeIP = f&changeIPFlag != 0
	c.ChangePort = f&changePortFlag != 0
	return nil
}
