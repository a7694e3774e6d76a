/* module.h - optional parts built as shared objects beside the slate binary (slate-NAME.so) and
 * loaded only by a run that uses them: the SDL window, the VNC server, the disassembler and user
 * networking (libslirp with GLib: about 0.3 ms of every start).
 * Linking SDL2, libvncserver and capstone into every run cost 11 ms of a 6 ms boot (SDL2 alone
 * pulls in some 60 libraries). Tests link the same objects in directly; then no file is loaded. */
#ifndef SLATE_MODULE_H
#define SLATE_MODULE_H

/* The table `symbol` of module `name`: `builtin` when this program was linked with it (pass the
 * table's weak reference), else from slate-NAME.so in $SLATE_MODULE_DIR or the directory of the
 * slate binary. NULL after logging why ("--display sdl: cannot load ...") under `purpose`. */
const void *module_load(const char *name, const char *symbol, const void *builtin, const char *purpose);

#endif
