#include "engine/nat/nft_netlink.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace azlb::engine {

namespace {

constexpr std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

struct Reply {
  bool answered = false;  // the kernel's ack or error came
  int error = 0;          // its errno (0: none)
  std::vector<std::vector<char>> messages;  // nf_tables messages before it: header and payload
};

// Sends one nf_tables request and reads what comes back until the ack (or,
// for a dump, its end).
Reply ask(std::uint16_t msg, std::uint8_t family, const std::string& name_attr, bool dump = false) {
  Reply r;
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return r;
  timeval tv{1, 0};  // the kernel answers at once; never wait for ever
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<char> req(NLMSG_HDRLEN + align4(sizeof(nfgenmsg)));
  if (!name_attr.empty()) req.resize(req.size() + align4(NLA_HDRLEN + name_attr.size() + 1), 0);
  auto* nh = reinterpret_cast<nlmsghdr*>(req.data());
  nh->nlmsg_len = static_cast<std::uint32_t>(req.size());
  nh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
  nh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | (dump ? NLM_F_DUMP : 0));
  nh->nlmsg_seq = 1;
  auto* g = reinterpret_cast<nfgenmsg*>(req.data() + NLMSG_HDRLEN);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  if (!name_attr.empty()) {
    auto* a = reinterpret_cast<nlattr*>(req.data() + NLMSG_HDRLEN + align4(sizeof(nfgenmsg)));
    a->nla_type = NFTA_TABLE_NAME;
    a->nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + name_attr.size() + 1);
    std::memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, name_attr.c_str(), name_attr.size() + 1);
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    ::close(fd);
    return r;
  }
  std::vector<char> buf(65536);
  while (!r.answered) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    auto len = static_cast<std::size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        r.answered = true;
        r.error = -e->error;
        break;
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        r.answered = true;
        break;
      }
      r.messages.emplace_back(reinterpret_cast<char*>(h), reinterpret_cast<char*>(h) + h->nlmsg_len);
    }
  }
  ::close(fd);
  return r;
}

// Calls `each(type, payload, length)` for every attribute of an nf_tables message.
template <class Each>
void attributes(const std::vector<char>& m, Each each) {
  std::size_t off = NLMSG_HDRLEN + align4(sizeof(nfgenmsg));
  while (off + NLA_HDRLEN <= m.size()) {
    nlattr a;
    std::memcpy(&a, m.data() + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > m.size()) break;
    each(static_cast<std::uint16_t>(a.nla_type & NLA_TYPE_MASK), m.data() + off + NLA_HDRLEN,
         static_cast<std::size_t>(a.nla_len - NLA_HDRLEN));
    off += align4(a.nla_len);
  }
}

// FNV-1a over what identifies an object; the order of the kernel's dump is
// its own and stable.
struct Fingerprint {
  std::uint64_t h = 1469598103934665603ull;
  void add(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // a separator: "ab","c" is not "a","bc"
  }
};

}  // namespace

std::optional<std::uint64_t> nft_table_fingerprint(const std::string& name, std::uint8_t family) {
  // Every object of the table: the dumps of rules and sets are filtered by the
  // kernel (their table attribute); chains of other tables are skipped here.
  Fingerprint f;
  const struct {
    std::uint16_t msg, table_attr;
    std::vector<std::uint16_t> keep;
  } kinds[] = {
      {NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE, {NFTA_CHAIN_NAME, NFTA_CHAIN_HANDLE, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY}},
      {NFT_MSG_GETRULE, NFTA_RULE_TABLE, {NFTA_RULE_CHAIN, NFTA_RULE_HANDLE}},
      {NFT_MSG_GETSET, NFTA_SET_TABLE, {NFTA_SET_NAME, NFTA_SET_HANDLE, NFTA_SET_FLAGS}},
  };
  bool table_seen = false;
  for (auto& kind : kinds) {
    const Reply r = ask(kind.msg, family, name, true);
    if (!r.answered || r.error != 0) return std::nullopt;  // ENOENT: no such table
    for (auto& m : r.messages) {
      bool ours = false;
      attributes(m, [&](std::uint16_t type, const char* p, std::size_t n) {
        if (type == kind.table_attr) ours = std::strncmp(p, name.c_str(), n) == 0 && n == name.size() + 1;
      });
      if (!ours) continue;
      table_seen = true;
      f.add(reinterpret_cast<const char*>(&kind.msg), sizeof kind.msg);
      attributes(m, [&](std::uint16_t type, const char* p, std::size_t n) {
        for (auto k : kind.keep)
          if (k == type) f.add(p, n);
      });
    }
  }
  // An empty table (no chain, rule or set) is not azlb's: its chains are there from the first apply.
  if (!table_seen) return std::nullopt;
  return f.h;
}

std::optional<bool> nft_inet_table_exists(const std::string& name) {
  const Reply r = ask(NFT_MSG_GETTABLE, NFPROTO_INET, name);
  if (!r.answered) return std::nullopt;
  if (r.error == ENOENT) return false;
  if (r.error != 0) return std::nullopt;
  return !r.messages.empty();
}

std::optional<std::uint32_t> nft_generation() {
  const Reply r = ask(NFT_MSG_GETGEN, AF_UNSPEC, "");
  if (!r.answered || r.error != 0 || r.messages.empty()) return std::nullopt;
  // NFTA_GEN_ID among the attributes after the nfgenmsg, in network order.
  const auto& m = r.messages.front();
  std::size_t off = NLMSG_HDRLEN + align4(sizeof(nfgenmsg));
  while (off + NLA_HDRLEN <= m.size()) {
    nlattr a;
    std::memcpy(&a, m.data() + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > m.size()) break;
    if ((a.nla_type & NLA_TYPE_MASK) == NFTA_GEN_ID && a.nla_len >= NLA_HDRLEN + 4) {
      std::uint32_t id;
      std::memcpy(&id, m.data() + off + NLA_HDRLEN, 4);
      return ntohl(id);
    }
    off += align4(a.nla_len);
  }
  return std::nullopt;
}

}  // namespace azlb::engine
