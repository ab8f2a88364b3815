// Fuzz target: the config loader (comments, _base_ chains, merging) and typed reads of the result.
#include "tensor/config.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(config) {
  gndet::Json cfg = gndet::load_config(gndet::fuzz::write_input_file(input, "config.json"));
  const gndet::ConfigNode root(cfg, "");
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    const gndet::ConfigNode node = root[it.key()];
    try {
      node.get_int("interval", 1, 1, INT64_MAX);
      if (node.size() > 0) node.as_double_list();
    } catch (const gndet::Error&) {
    }
  }
  gndet::apply_config_override(cfg, cfg.empty() ? "x=1" : cfg.begin().key() + "=[1, {\"a\": 2}]");
}
