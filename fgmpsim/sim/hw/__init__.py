"""The model of each hardware block: what the datapath sees of an op (:mod:`.operands`), the VMAC lanes' work
(:mod:`.lanes`) and the data moved between DRAM, the GLB and the PE buffers (:mod:`.traffic`)."""
