/* Swift's view of bpf/finwait.h: the record is defined there and only there. */
#ifndef FINWAIT_EVENT_H
#define FINWAIT_EVENT_H
#include "../../../bpf/finwait.h"
#endif
