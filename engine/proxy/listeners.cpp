#include "engine/proxy/listeners.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "engine/log.hpp"

namespace azlb::engine {

std::vector<std::uint64_t> Listeners::apply(const Config& c, bool draining) {
  std::vector<bool> kept(slots_.size(), false);
  // A listener's slot by its socket, looked up once per route: this runs on
  // the worker between completions, and a scan of every slot per route made
  // a change to a state of 1,000 listeners stall each worker for 2 ms
  // (10,000: 200 ms).
  std::unordered_map<int, std::uint32_t> live;
  live.reserve(slots_.size());
  for (std::uint32_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].fd >= 0 && !slots_[s].removed) live[slots_[s].fd] = s;
  for (std::size_t r = 0; r < c.routes.size(); ++r) {
    const int fd = c.fds[r][loop_.opt.id];
    if (fd < 0) continue;  // another worker serves this address (listener_set.hpp)
    const auto found = live.find(fd);
    std::uint32_t slot = found == live.end() ? UINT32_MAX : found->second;
    if (slot == UINT32_MAX) {
      if (free_.empty()) {
        slots_.emplace_back();
        kept.push_back(false);
        slot = static_cast<std::uint32_t>(slots_.size() - 1);
      } else {
        slot = free_.back();
        free_.pop_back();
        slots_[slot] = ListenerSlot{};
      }
      slots_[slot].fd = fd;
      live[fd] = slot;
      slots_[slot].id = next_id_++;
      slots_[slot].protocol = c.routes[r].key.protocol;
      slots_[slot].route = &c.routes[r];
      if (!draining) arm(slot);
    }
    slots_[slot].route = &c.routes[r];
    kept[slot] = true;
  }
  std::vector<std::uint64_t> removed;
  for (std::uint32_t s = 0; s < slots_.size(); ++s)
    if (!kept[s] && slots_[s].fd >= 0 && !slots_[s].removed) {
      removed.push_back(slots_[s].id);
      cancel(s);
    }
  return removed;
}

std::vector<std::uint64_t> Listeners::stop_all() {
  std::vector<std::uint64_t> removed;
  for (std::uint32_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].fd >= 0 && !slots_[s].removed) {
      removed.push_back(slots_[s].id);
      cancel(s);
    }
  return removed;
}

// The socket itself belongs to the control thread, which closes it once no
// worker uses it; the slot is freed when its request has ended.
void Listeners::cancel(std::uint32_t s) {
  auto& l = slots_[s];
  l.removed = true;
  l.route = nullptr;
  if (l.paused) --paused_count_, l.paused = false;
  if (l.request == ListenerSlot::Request::Off) return free_slot(s);
  auto* q = loop_.sqe();
  io_uring_prep_cancel64(q, pack(l.protocol == model::Protocol::Tcp ? Op::Accept : Op::UdpListen, s), 0);
  io_uring_sqe_set_data64(q, pack(Op::CancelListener, s));
}

void Listeners::free_slot(std::uint32_t s) {
  slots_[s].fd = -1;
  slots_[s].route = nullptr;
  free_.push_back(s);
}

void Listeners::pause(std::uint32_t s, const char* why) {
  auto& l = slots_[s];
  if (!l.paused) ++paused_count_;
  l.paused = true;
  const bool tcp = l.protocol == model::Protocol::Tcp;
  log_ratelimited("%s: %s paused (%s); it resumes once that has passed", l.route->key.to_string().c_str(),
                  tcp ? "accepting" : "receiving", why);
}

bool Listeners::on_completion(std::uint32_t s, const io_uring_cqe* cqe) {
  auto& l = slots_[s];
  const bool tcp = l.protocol == model::Protocol::Tcp;
  if (tcp && cqe->res >= 0) loop_.fds.force();  // the accepted socket exists: count it first
  const bool more = cqe->flags & IORING_CQE_F_MORE;
  if (!more) {
    l.request = ListenerSlot::Request::Off;
    const int res = cqe->res;
    if (l.removed) {
      free_slot(s);
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      // Out of descriptors or memory: the kernel ended the request. Existing
      // connections go on; the listener resumes at a tick.
      pause(s, std::strerror(-res));
    } else if (res >= 0 || res == -ECANCELED || res == -EINTR || res == -ECONNABORTED) {
      arm(s);  // ended by us near the fd limit, by a single accept, or by the kernel: go on
    } else {
      pause(s, std::strerror(-res));
    }
  } else if (tcp && l.request == ListenerSlot::Request::Multishot && loop_.fds.near(kAcceptMargin)) {
    // Close to the limit: end the multishot request; its end re-arms one accept at a time.
    auto* q = loop_.sqe();
    io_uring_prep_cancel64(q, pack(Op::Accept, s), 0);
    io_uring_sqe_set_data64(q, pack(Op::CancelListener, s));
    l.request = ListenerSlot::Request::Ending;
  }
  return cqe->res >= 0 && !l.removed;
}

void Listeners::arm(std::uint32_t s) {
  auto& l = slots_[s];
  // An accepted connection needs two descriptors (client and upstream).
  if (l.protocol == model::Protocol::Tcp && loop_.fds.near(2)) return pause(s, "the descriptor budget is spent");
  auto* q = loop_.sqe();
  if (l.protocol == model::Protocol::Udp) {
    l.msg = {};
    l.msg.msg_namelen = sizeof(sockaddr_storage);
    // Room for the destination address (IP_PKTINFO) when the VIP is a wildcard.
    if (l.route->key.address.is_unspecified()) l.msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    io_uring_prep_recvmsg_multishot(q, l.fd, &l.msg, 0);
    q->flags |= IOSQE_BUFFER_SELECT;
    q->buf_group = loop_.udp_bufs->group();
    io_uring_sqe_set_data64(q, pack(Op::UdpListen, s));
    l.request = ListenerSlot::Request::Multishot;
    return;
  }
  if (loop_.fds.near(kAcceptMargin)) {
    io_uring_prep_accept(q, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    l.request = ListenerSlot::Request::Single;
  } else {
    io_uring_prep_multishot_accept(q, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    l.request = ListenerSlot::Request::Multishot;
  }
  io_uring_sqe_set_data64(q, pack(Op::Accept, s));
}

void Listeners::on_tick() {
  for (std::uint32_t s = 0; s < slots_.size(); ++s) {
    auto& l = slots_[s];
    if (!l.paused || l.removed) continue;
    if (l.protocol == model::Protocol::Tcp && loop_.fds.near(2)) continue;
    l.paused = false;
    --paused_count_;
    arm(s);
  }
}

}  // namespace azlb::engine
