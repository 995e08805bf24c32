package events

import "fmt"

// State is a circuit breaker's state.
type State uint8

// The breaker states. Closed, Open and HalfOpen are driven by traffic;
// ForcedOpen and Disabled are set by hand (or by a health monitor).
const (
	Closed State = iota
	Open
	HalfOpen
	ForcedOpen
	Disabled
)

var stateNames = [...]string{"Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled"}

// String returns the state's name as it appears in JSON: "Closed", "Open",
// "HalfOpen", "ForcedOpen" or "Disabled".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Valid reports whether s is one of the five defined states.
func (s State) Valid() bool { return int(s) < len(stateNames) }

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("events: invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name; anything else is an error.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// ParseState returns the state with the given name.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("events: unknown state %q (want one of Closed, Open, HalfOpen, ForcedOpen, Disabled)", name)
}
