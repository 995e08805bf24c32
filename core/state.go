package core

// Outcome is what a call's result means to a breaker.
type Outcome uint8

const (
	// Success counts toward closing and keeps a closed breaker closed.
	Success Outcome = iota
	// Failure counts toward opening.
	Failure
	// Ignored is neither: the call is forgotten (a cancelled request, say),
	// and a half-open probe slot it held is handed back.
	Ignored
	// Timeout is a failure because the call ran out of its time: it counts
	// toward opening exactly as Failure does, and is also counted apart
	// (Snapshot.Timeouts), so that slow dependencies can be told from
	// broken ones.
	Timeout
)

// failed reports whether the outcome counts toward opening.
func (o Outcome) failed() bool { return o == Failure || o == Timeout }

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	case Timeout:
		return "timeout"
	}
	return "unknown"
}
