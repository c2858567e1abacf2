package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentBindsKeepOneRegistrationPerUser: 8 goroutines bind random
// registrations to random users while a reader checks every page it gets.
// Run with -race.
func TestConcurrentBindsKeepOneRegistrationPerUser(t *testing.T) {
	st := bigState(t, 40)
	e := newEnv(t, st, Options{})
	users := []struct{ app, user string }{{"10", "200"}, {"10", "201"}, {"10", "202"}, {"11", "203"}, {"11", "204"}}
	var regs []string
	for _, r := range st.Registrations {
		if !r.Deactivated {
			regs = append(regs, strconv.FormatInt(r.ID, 10))
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 40 {
				reg := regs[rng.IntN(len(regs))]
				u := users[rng.IntN(len(users))]
				args := []string{"sip_registration_id", reg, "application_id", u.app, "user_id", u.user}
				if rng.IntN(5) == 0 {
					args = []string{"sip_registration_id", reg, "bind", "false"}
				}
				a, err := e.tryCall("BindSipRegistration", args...)
				if err == nil && a.Error != nil {
					err = fmt.Errorf("api error %d: %s", a.Error.Code, a.Error.Msg)
				}
				if err != nil {
					t.Errorf("bind %s: %v", reg, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			a, err := e.tryCall("GetSipRegistrations", "count", "1000")
			var rows []sipRegistrationType
			if err == nil {
				err = json.Unmarshal(a.Result, &rows)
			}
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			holders := map[int64]int64{}
			for _, r := range rows {
				if r.UserID == 0 {
					continue
				}
				if other, dup := holders[r.UserID]; dup {
					t.Errorf("user %d on registrations %d and %d", r.UserID, other, r.ID)
					return
				}
				holders[r.UserID] = r.ID
			}
		}
	})
	wg.Wait()
	close(done)
	reader.Wait()
	if err := e.srv.State().Validate(); err != nil {
		t.Fatalf("after concurrent binds: %v", err)
	}
	if w := e.srv.Stats().Writes; w == 0 {
		t.Error("no bind changed anything")
	}
}
