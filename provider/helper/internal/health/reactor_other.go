//go:build !linux

package health

import "errors"

// NewReactor has no reactor to give but on Linux (epoll): elsewhere every probe runs on a worker goroutine.
func NewReactor() (Reactor, error) { return nil, errors.ErrUnsupported }
