package main

import (
	"context"
	"errors"
)

func (a *app) bench(ctx context.Context, args []string) error {
	return errors.New("bench: not available yet")
}
