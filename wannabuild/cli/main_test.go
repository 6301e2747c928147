package cli

import (
	"os"
	"testing"

	"buildd/internal/queue/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
