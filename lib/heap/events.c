#include "events.h"

_Atomic int64_t stat_events[EV_COUNT];
