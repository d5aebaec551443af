#!/bin/sh
# Entrypoint of the hajimi image (POSIX sh; Debian's dash runs it).
#
# HAJIMI's image ran as root, so a settings volume carried over from it (/hajimi/settings) is
# owned by root and the unprivileged hajimi user could not write it. Started as root (the
# default), this script gives such a volume to hajimi, then drops root and runs the gateway as
# uid 10001. Started as any other user (`docker run --user`, Hugging Face Spaces' uid 1000),
# it changes nothing and runs the gateway as that user.
#
# HAJIMI 的镜像以 root 运行，旧的 /hajimi/settings 卷属于 root。以 root 启动时，本脚本把该卷交给
# hajimi 用户（uid 10001），再降权运行；以其他用户启动时直接运行。
set -eu

app_uid=10001
app_gid=10001
data_dir=/hajimi/settings

# `docker run IMAGE --port 8080` passes the flags to hajimi; `docker run IMAGE sh` runs sh.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- hajimi "$@"
fi

if [ "$(id -u)" -ne 0 ]; then
    exec "$@"
fi

# Anything in the volume still owned by root (HAJIMI's settings.json, a directory Docker created
# for a bind mount)? Then hand the whole volume over. chown -R does not follow symbolic links.
if [ -d "$data_dir" ] && [ -n "$(find "$data_dir" -user 0 -print -quit 2>/dev/null)" ]; then
    echo "entrypoint: $data_dir is owned by root; giving it to uid $app_uid (hajimi)" \
        "/ 将属于 root 的 $data_dir 交给 hajimi 用户 (uid $app_uid)" >&2
    # A read-only volume cannot be changed: say so and go on; hajimi then reports whether it
    # can store anything there.
    chown -R "$app_uid:$app_gid" "$data_dir" ||
        echo "entrypoint: could not change the owner of $data_dir / 无法修改 $data_dir 的所有者" >&2
fi

# setpriv (util-linux, part of every Debian image) switches user and group, sets the
# supplementary groups of hajimi, and keeps the environment (where the configuration lives).
HOME=/hajimi
export HOME
exec setpriv --reuid="$app_uid" --regid="$app_gid" --init-groups -- "$@"
