// Package demo holds the demo of the whole loop (demo.sh, run by `make demo`):
// a btrfs volume with a build machine, a local reprepro archive of the small
// source packages under packages/, a wanna-build queue merged from it,
// buildd building in parallel, log mails answered through buildd-reply.el
// (answer.el) and acted on by buildd-mail, buildd-uploader uploading into the
// archive. Its end-to-end test runs the same script and checks every part.
package demo
