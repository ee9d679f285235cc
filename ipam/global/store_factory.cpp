#include "ipam/global/store_factory.h"

#include <chrono>
#include <stdexcept>

#include "ipam/global/etcd_store.h"
#include "ipam/global/file_store.h"

namespace ipam {

std::unique_ptr<KvStore> open_global_store(const StoreConfig& config) {
  switch (config.type) {
    case StoreConfig::Type::kFile:
      return std::make_unique<FileStore>(config.path, std::chrono::milliseconds(config.timeout_ms));
    case StoreConfig::Type::kEtcd: {
      EtcdOptions o;
      o.endpoints = config.endpoints;
      o.prefix = config.prefix;
      o.ca_file = config.ca_file;
      o.cert_file = config.cert_file;
      o.key_file = config.key_file;
      o.timeout = std::chrono::milliseconds(config.timeout_ms);
      return std::make_unique<EtcdStore>(std::move(o));
    }
  }
  throw std::logic_error("unknown store type");
}

}  // namespace ipam
