package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// epoch is the modification time of the files this package makes up, so
// that their layers do not change from one build to the next.
const epoch = 0

// node is one entry of a layer: a directory, a file (with its content in
// data or in the local file src), or a symbolic link.
type node struct {
	typ      byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode     int64
	uid, gid int
	data     []byte
	src      string
	link     string
}

// tree is the content of one layer, keyed by clean absolute path. Missing
// parent directories are added, root-owned with mode 0755, when it is
// written.
type tree map[string]*node

func (t tree) dir(name string, mode int64, uid, gid int) {
	t[path.Clean(name)] = &node{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}

func (t tree) file(name string, mode int64, uid, gid int, data []byte) {
	t[path.Clean(name)] = &node{typ: tar.TypeReg, mode: mode, uid: uid, gid: gid, data: data}
}

func (t tree) copyFile(name string, mode int64, uid, gid int, src string) {
	t[path.Clean(name)] = &node{typ: tar.TypeReg, mode: mode, uid: uid, gid: gid, src: src}
}

func (t tree) symlink(name, target string) {
	t[path.Clean(name)] = &node{typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// copyDir adds the host directory src at name, root-owned, keeping its
// files' permission bits and its symbolic links.
func (t tree) copyDir(ctx context.Context, name, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			t.dir(dst, int64(fi.Mode().Perm()), 0, 0)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.symlink(dst, target)
		case fi.Mode().IsRegular():
			t.copyFile(dst, int64(fi.Mode().Perm()), 0, 0, p)
		}
		return nil
	})
}

// writeLayer writes t as a gzip-compressed layer tar to file.
func (t tree) writeLayer(ctx context.Context, file string) error {
	names := make([]string, 0, len(t))
	all := map[string]*node{}
	for name, n := range t {
		all[name] = n
		for p := path.Dir(name); p != "/" && p != "."; p = path.Dir(p) {
			if _, ok := all[p]; !ok {
				if _, ok := t[p]; !ok {
					all[p] = &node{typ: tar.TypeDir, mode: 0o755}
				}
			}
		}
	}
	for name := range all {
		names = append(names, name)
	}
	// A parent sorts before its children: it is their prefix.
	slices.Sort(names)

	return writeGzipTar(file, func(tw *tar.Writer) error {
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := all[name]
			hdr := &tar.Header{
				Typeflag: n.typ,
				Name:     strings.TrimPrefix(name, "/"),
				Mode:     n.mode,
				Uid:      n.uid,
				Gid:      n.gid,
				ModTime:  time.Unix(epoch, 0),
				Linkname: n.link,
				Format:   tar.FormatPAX,
			}
			if n.typ == tar.TypeDir {
				hdr.Name += "/"
			}
			if n.typ == tar.TypeReg && n.src == "" {
				hdr.Size = int64(len(n.data))
			}
			if n.typ == tar.TypeReg && n.src != "" {
				if err := copyInto(tw, hdr, n.src); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				continue
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, err := tw.Write(n.data); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
}

// writeGzipTar creates file and fills it through a gzip tar writer.
func writeGzipTar(file string, fill func(*tar.Writer) error) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return err
	}
	tw := tar.NewWriter(zw)
	err = fill(tw)
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing layer %s: %w", file, err)
	}
	return nil
}

// tarRootfs writes the directory dir as a layer to file: every entry with
// its mode, owner and modification time, symbolic links as links, files
// with several names as hard links; device files and sockets are left out
// (the container runtime makes /dev).
func tarRootfs(ctx context.Context, dir, file string) error {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	return writeGzipTar(file, func(tw *tar.Writer) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if p == dir {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			m := fi.Mode()
			if m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket) != 0 {
				return nil
			}
			link := ""
			if m&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			hdr.Name = filepath.ToSlash(rel)
			if fi.IsDir() {
				hdr.Name += "/"
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return fmt.Errorf("%s: no owner information", p)
			}
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			hdr.Uname, hdr.Gname = "", ""
			hdr.ModTime = fi.ModTime().Truncate(time.Second)
			hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
			hdr.Format = tar.FormatPAX
			if m.IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := seen[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					seen[key] = hdr.Name
				}
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if hdr.Typeflag == tar.TypeReg {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			return nil
		})
	})
}

// copyInto writes hdr, sized from the local file src, and src's content.
func copyInto(tw *tar.Writer, hdr *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
