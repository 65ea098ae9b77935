"""Reading untrusted files and writing results safely: the one YAML reader, bounded reads, atomic outputs."""

from fgmpsim.io.atomic import atomic_path, atomic_write, check_output_dir, check_output_file
from fgmpsim.io.safe_yaml import MAX_DEPTH, MAX_NODES, MAX_YAML_BYTES, parse_yaml, read_bounded, read_yaml_file

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_YAML_BYTES", "atomic_path", "atomic_write", "check_output_dir",
           "check_output_file", "parse_yaml", "read_bounded", "read_yaml_file"]
