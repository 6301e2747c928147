package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"buildd/internal/flock"
)

// CleanReport says what Clean did and what it left alone.
type CleanReport struct {
	Deleted       []string // paths deleted
	NotUnderstood []string // "PATH: why", left alone: not ours by the layout
	Busy          []string // "PATH: why", ours but in use now
}

// Print writes the report as `buildd machine clean` prints it: a line
// "deleted PATH", "in use PATH: why" or "left alone PATH: why" for each.
func (r CleanReport) Print(w io.Writer) {
	for _, p := range r.Deleted {
		fmt.Fprintf(w, "deleted %s\n", p)
	}
	for _, p := range r.Busy {
		fmt.Fprintf(w, "in use %s\n", p)
	}
	for _, p := range r.NotUnderstood {
		fmt.Fprintf(w, "left alone %s\n", p)
	}
}

// Clean deletes what the layout says is garbage: stray working snapshots
// (their owner is gone) and their locks, half-made revisions (.new-N),
// half-received ones (.recv-N) and
// current.new when no create/upgrade is running, revisions that are neither
// current nor used by a working snapshot, and machines without a current
// revision (an interrupted create or delete). It touches nothing else:
// whatever it does not recognise is listed in NotUnderstood. Errors deleting
// one thing do not stop it; they are joined into the returned error.
func (s *Store) Clean(ctx context.Context) (CleanReport, error) {
	var rep CleanReport
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return rep, fmt.Errorf("machines_dir %s: %w", s.Dir, err)
	}
	var errs []error
	for _, e := range ents {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		p := filepath.Join(s.Dir, e.Name())
		if !e.IsDir() {
			rep.NotUnderstood = append(rep.NotUnderstood, p+": not a machine directory")
			continue
		}
		if _, err := os.Stat(filepath.Join(p, markerName)); err != nil {
			rep.NotUnderstood = append(rep.NotUnderstood, p+": no "+markerName+" marker: not a buildd machine")
			continue
		}
		if err := s.cleanMachine(p, e.Name(), &rep); err != nil {
			errs = append(errs, err)
		}
	}
	sort.Strings(rep.Deleted)
	sort.Strings(rep.NotUnderstood)
	sort.Strings(rep.Busy)
	return rep, errors.Join(errs...)
}

// CleanMachine is Clean of machine name alone.
func (s *Store) CleanMachine(name string) (CleanReport, error) {
	var rep CleanReport
	d, err := s.machineDirOf(name)
	if err != nil {
		return rep, err
	}
	err = s.cleanMachine(d, name, &rep)
	sort.Strings(rep.Deleted)
	sort.Strings(rep.NotUnderstood)
	sort.Strings(rep.Busy)
	return rep, err
}

func (s *Store) cleanMachine(d, name string, rep *CleanReport) error {
	var errs []error
	al, err := flock.Acquire(filepath.Join(d, adminLock), flock.Exclusive, 0o644, 0)
	adminFree := err == nil
	if adminFree {
		defer al.Unlock()
	} else {
		rep.Busy = append(rep.Busy, d+": create, upgrade or delete running")
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	for _, e := range ents {
		n := e.Name()
		p := filepath.Join(d, n)
		switch {
		case n == markerName || n == adminLock || n == revisionsLock || n == archivesName || n == listsName:
		case layerRE.MatchString(n):
			if !isSubvolume(p) {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": layer that is not a subvolume")
			}
		case strings.HasSuffix(n, infoSuffix) && layerRE.MatchString(strings.TrimSuffix(n, infoSuffix)):
			if _, err := os.Lstat(strings.TrimSuffix(p, infoSuffix)); errors.Is(err, fs.ErrNotExist) {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				} else {
					rep.Deleted = append(rep.Deleted, p)
				}
			}
		case strings.HasPrefix(n, layerNewPrefix):
			if strings.HasSuffix(n, lockSuffix) {
				continue
			}
			if !isSubvolume(p) {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": half-made layer that is not a subvolume")
			} else if ok, err := deleteStrayLayer(p); err != nil {
				errs = append(errs, err)
			} else if ok {
				rep.Deleted = append(rep.Deleted, p)
			} else {
				rep.Busy = append(rep.Busy, p+": being made")
			}
		case n == currentName:
			if _, _, err := currentRevision(d, name); err != nil {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": "+err.Error())
			} else if _, err := os.Stat(p); err != nil {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": dangling symlink")
			}
		case n == currentNew:
			if adminFree {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				} else {
					rep.Deleted = append(rep.Deleted, p)
				}
			}
		case newRE.MatchString(n):
			if !isSubvolume(p) {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": half-made revision that is not a subvolume")
			} else if adminFree {
				if err := deleteSubvolume(p); err != nil {
					errs = append(errs, err)
				} else {
					rep.Deleted = append(rep.Deleted, p)
				}
			}
		case recvRE.MatchString(n):
			if adminFree {
				if err := removeStage(p); err != nil {
					rep.NotUnderstood = append(rep.NotUnderstood, p+": half-received revision: "+err.Error())
				} else {
					rep.Deleted = append(rep.Deleted, p)
				}
			}
		case strings.HasSuffix(n, lockSuffix) && workRE.MatchString(strings.TrimSuffix(n, lockSuffix)):
			if _, err := os.Lstat(strings.TrimSuffix(p, lockSuffix)); err == nil {
				continue
			}
			if _, err := os.Lstat(p); err != nil {
				continue // its snapshot's deletion just removed it
			}
			if ok, err := s.deleteStray(d, strings.TrimSuffix(n, lockSuffix)); err != nil {
				errs = append(errs, err)
			} else if ok {
				rep.Deleted = append(rep.Deleted, p)
			}
		case workRE.MatchString(n):
			if !isSubvolume(p) {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": working snapshot that is not a subvolume")
				continue
			}
			ok, err := s.deleteStray(d, n)
			switch {
			case err != nil:
				errs = append(errs, err)
			case ok:
				rep.Deleted = append(rep.Deleted, p)
			default:
				rep.Busy = append(rep.Busy, p+": in use by "+ownerOf(p))
			}
		default:
			if _, ok := revisionNumber(name, n); ok {
				if !isSubvolume(p) {
					rep.NotUnderstood = append(rep.NotUnderstood, p+": revision that is not a subvolume")
				}
				continue
			}
			rep.NotUnderstood = append(rep.NotUnderstood, p+": not part of the machine layout")
		}
	}
	if _, _, err := currentRevision(d, name); err != nil && adminFree {
		m, ierr := s.inspect(name)
		if ierr != nil {
			return ierr
		}
		live := false
		for _, w := range m.Working {
			live = live || w.Live
		}
		if !live {
			if err := s.removeMachine(d, name, rep); err != nil {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
	}
	del, err := s.deleteOldRevisions(d, name)
	rep.Deleted = append(rep.Deleted, del...)
	if err != nil {
		errs = append(errs, err)
	}
	del, err = dropOldCaches(d, name)
	rep.Deleted = append(rep.Deleted, del...)
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// dropOldCaches deletes the layers and shared package lists of revisions
// other than the current one.
func dropOldCaches(d, name string) ([]string, error) {
	_, cur, err := currentRevision(d, name)
	if err != nil {
		return nil, nil
	}
	deleted, err := evictLayers(d, name, math.MaxInt64)
	lists, lerr := cleanLists(d, cur)
	return append(deleted, lists...), errors.Join(err, lerr)
}

// deleteStrayLayer deletes the half-made layer p if no build is making it.
func deleteStrayLayer(p string) (bool, error) {
	lk, err := flock.Acquire(p+lockSuffix, flock.Exclusive, 0o644, 0)
	if errors.Is(err, flock.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer lk.Unlock()
	if err := deleteSubvolume(p); err != nil {
		return false, err
	}
	os.Remove(p + lockSuffix)
	return true, nil
}

func ownerOf(p string) string {
	b, err := os.ReadFile(p + lockSuffix)
	if err != nil || len(b) == 0 {
		return "a live process"
	}
	return "pid " + strings.TrimSpace(string(b))
}

// deleteStray deletes working snapshot wname and its lock if its owner is
// gone; false if the owner still holds the lock.
func (s *Store) deleteStray(d, wname string) (bool, error) {
	lp := filepath.Join(d, wname+lockSuffix)
	lk, err := flock.Acquire(lp, flock.Exclusive, 0o644, 0)
	if errors.Is(err, flock.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer lk.Unlock()
	wp := filepath.Join(d, wname)
	if _, err := os.Lstat(wp); err == nil {
		if err := deleteSubvolume(wp); err != nil {
			return false, err
		}
	}
	if err := os.Remove(lp); err != nil {
		return false, err
	}
	return true, nil
}

// removeMachine deletes a machine that has no current revision: its
// revisions and half-made ones, its marker and locks, then the directory.
// Whatever is not ours stays, listed in rep.NotUnderstood, and so does the
// directory.
func (s *Store) removeMachine(d, name string, rep *CleanReport) error {
	ents, err := os.ReadDir(d)
	if err != nil {
		return err
	}
	var errs []error
	foreign := false
	for _, e := range ents {
		n := e.Name()
		p := filepath.Join(d, n)
		_, isRev := revisionNumber(name, n)
		switch {
		case recvRE.MatchString(n):
			if err := removeStage(p); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Deleted = append(rep.Deleted, p)
		case (isRev || newRE.MatchString(n) || layerRE.MatchString(n) || strings.HasPrefix(n, layerNewPrefix)) && isSubvolume(p):
			if err := deleteSubvolume(p); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Deleted = append(rep.Deleted, p)
		case n == currentNew || n == markerName || n == revisionsLock || n == adminLock:
		case n == archivesName || n == listsName || strings.HasSuffix(n, infoSuffix) && layerRE.MatchString(strings.TrimSuffix(n, infoSuffix)) ||
			strings.HasPrefix(n, layerNewPrefix) && strings.HasSuffix(n, lockSuffix):
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Deleted = append(rep.Deleted, p)
		case workRE.MatchString(strings.TrimSuffix(n, lockSuffix)):
			errs = append(errs, fmt.Errorf("machine %s: %s still there", name, p))
		default:
			foreign = true
			if !containsPrefix(rep.NotUnderstood, p+":") {
				rep.NotUnderstood = append(rep.NotUnderstood, p+": not part of the machine layout")
			}
		}
	}
	if foreign || len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, n := range []string{currentNew, markerName, revisionsLock, adminLock} {
		if err := os.Remove(filepath.Join(d, n)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Remove(d); err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	rep.Deleted = append(rep.Deleted, d)
	return nil
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
