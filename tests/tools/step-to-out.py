# gdb: steps (stepi) until the instruction at $pc is a port write ("out"), passing the first
# $skip_outs of them (default none), at most 5000 steps; prints "at out 0xADDR", steps over it
# and prints "after out 0xADDR". For gdb.t: a single step over an instruction that exits to
# slate (a hypercall, a device register) must stop right after it.
import gdb

try:
    skip = int(gdb.parse_and_eval("$skip_outs"))
except gdb.error:
    skip = 0
for _ in range(5000):
    pc = int(gdb.parse_and_eval("$pc"))
    insn = gdb.selected_frame().architecture().disassemble(pc)[0]
    if insn["asm"].startswith("out ") and skip == 0:
        print("at out %#x length %d" % (pc, insn["length"]))
        gdb.execute("stepi", to_string=True)
        print("after out %#x" % int(gdb.parse_and_eval("$pc")))
        break
    if insn["asm"].startswith("out "):
        skip -= 1
    gdb.execute("stepi", to_string=True)
else:
    print("no out within 5000 steps")
