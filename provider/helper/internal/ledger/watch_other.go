//go:build !linux

package ledger

import (
	"context"
	"errors"
)

// Watch is inotify's (watch_linux.go): elsewhere there is no watch, and the checker re-reads the ledger every second.
func Watch(context.Context) (<-chan struct{}, error) {
	return nil, errors.New("watching the ledger needs inotify (Linux)")
}
