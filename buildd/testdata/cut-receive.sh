#!/bin/sh
# cut-receive.sh BUILDD MACHINES_DIR ARGS...: the receiving end of a push
# that dies halfway. It runs `BUILDD machine --machines-dir MACHINES_DIR
# ARGS`; a receive is fed the first 32 MiB of the stream and then killed,
# with the btrfs receive it started, by SIGKILL, as a power cut would.
set -e
bin=$1 dir=$2
shift 2
if [ "$1" != receive ]; then
	exec "$bin" machine --machines-dir "$dir" "$@"
fi
fifo=$(mktemp -u)
mkfifo "$fifo"
setsid "$bin" machine --machines-dir "$dir" "$@" <"$fifo" &
pid=$!
exec 3>"$fifo"
rm "$fifo"
head -c 33554432 >&3
kill -9 -"$pid"
exit 1
