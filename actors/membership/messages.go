package membership

import "time"

// message is the closed set of messages the state machine steps on. Each
// carries Now, the time the loop stamped it with.
type message interface {
	isMessage()
	stamp() time.Time // the time the loop stamped it with
}

// request is a message sent through the inbox by an API call. The loop
// stamps it with the time it takes it out (at), and answers an error (nil =
// done) on Reply after it has done the I/O.
type request interface {
	message
	at(now time.Time) request
	reply() chan<- error
}

// tickMsg is a tick of the loop's ticker: publish a beat if one is due, and
// check every member's silence. Queued are the beats that were waiting in
// our queue when the tick was taken: the loop's select picks among ready
// channels at random, so without them a tick after a stall would judge
// peers whose beats sat unread behind it. They count as heard at Now.
type tickMsg struct {
	Now    time.Time
	Queued []Heartbeat
}

// beatMsg is a heartbeat that arrived from the bus.
type beatMsg struct {
	Beat Heartbeat
	Now  time.Time // arrival
}

// forceLeaveRequest marks a suspect or dead member left (Membership.ForceLeave).
type forceLeaveRequest struct {
	Name  string
	Now   time.Time
	Reply chan<- error
}

// setTagsRequest replaces our own tags and beats at once (Membership.SetTags).
type setTagsRequest struct {
	Tags  map[string]string // owned by the message: the caller passes a copy
	Now   time.Time
	Reply chan<- error
}

// setRoleRequest changes our own role and beats at once (Membership.SetRole).
type setRoleRequest struct {
	Role  string
	Now   time.Time
	Reply chan<- error
}

// leaveRequest marks us left and beats with Leaving at once (Membership.Leave).
type leaveRequest struct {
	Now   time.Time
	Reply chan<- error
}

// pingRequest does nothing; its answer shows the loop runs (Membership.Ready).
type pingRequest struct {
	Now   time.Time
	Reply chan<- error
}

func (tickMsg) isMessage()           {}
func (beatMsg) isMessage()           {}
func (forceLeaveRequest) isMessage() {}
func (setTagsRequest) isMessage()    {}
func (setRoleRequest) isMessage()    {}
func (leaveRequest) isMessage()      {}
func (pingRequest) isMessage()       {}

func (m tickMsg) stamp() time.Time           { return m.Now }
func (m beatMsg) stamp() time.Time           { return m.Now }
func (m forceLeaveRequest) stamp() time.Time { return m.Now }
func (m setTagsRequest) stamp() time.Time    { return m.Now }
func (m setRoleRequest) stamp() time.Time    { return m.Now }
func (m leaveRequest) stamp() time.Time      { return m.Now }
func (m pingRequest) stamp() time.Time       { return m.Now }

func (m forceLeaveRequest) reply() chan<- error { return m.Reply }
func (m setTagsRequest) reply() chan<- error    { return m.Reply }
func (m setRoleRequest) reply() chan<- error    { return m.Reply }
func (m leaveRequest) reply() chan<- error      { return m.Reply }
func (m pingRequest) reply() chan<- error       { return m.Reply }

func (m forceLeaveRequest) at(now time.Time) request { m.Now = now; return m }
func (m setTagsRequest) at(now time.Time) request    { m.Now = now; return m }
func (m setRoleRequest) at(now time.Time) request    { m.Now = now; return m }
func (m leaveRequest) at(now time.Time) request      { m.Now = now; return m }
func (m pingRequest) at(now time.Time) request       { m.Now = now; return m }
