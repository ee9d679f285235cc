#pragma once

#include <memory>

#include "ipam/global/config.h"
#include "ipam/global/store.h"

namespace ipam {

// The store a config names: a FileStore at `path`, or an EtcdStore on `endpoints`.
std::unique_ptr<KvStore> open_global_store(const StoreConfig& config);

}  // namespace ipam
