package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryHierarchy: the memory controller is found in real mountinfo
// texts (testdata/mountinfo): cgroup2 when its cgroup.controllers offers
// memory, else the cgroup v1 mount with memory, else none.
func TestMemoryHierarchy(t *testing.T) {
	for _, tc := range []struct {
		file        string
		controllers map[string]string // cgroup.controllers of each cgroup2 mount
		want        hierarchy
		ok          bool
	}{
		{"hybrid-v1-memory", map[string]string{"/sys/fs/cgroup/unified": "hugetlb\n"}, hierarchy{1, "/sys/fs/cgroup/memory"}, true},
		{"v2-memory", map[string]string{"/sys/fs/cgroup": "cpuset cpu io memory hugetlb pids rdma misc\n"}, hierarchy{2, "/sys/fs/cgroup"}, true},
		{"v2-no-memory", map[string]string{"/sys/fs/cgroup": "cpuset cpu io pids\n"}, hierarchy{}, false},
		{"v1-memory-in-a-combined-hierarchy", map[string]string{"/sys/fs/cgroup/unified": ""}, hierarchy{1, "/sys/fs/cgroup/memory and blkio"}, true},
		{"none", nil, hierarchy{}, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/mountinfo", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := memoryHierarchy(string(data), func(dir string) string { return tc.controllers[dir] })
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
