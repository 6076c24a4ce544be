#pragma once
// Turning what one rank finds into what every rank knows: the way an error becomes collective.
#include <functional>

#include "parallel/comm.h"

namespace gradfit::parallel {

// Collective over `comm`. Runs `action` on every rank where `participate` is true and shares the first failure:
// every rank then throws the same CollectiveError, carrying the message of the lowest failing rank. `action` must
// not itself call collectives on `comm`, or a rank that failed before one would leave the others waiting in it.
void all_or_none(const Comm& comm, bool participate, const std::function<void()>& action);

}  // namespace gradfit::parallel
