#pragma once
// Fault injection for the preemption and failure tests (tests/mpi/resume.py): CATMERGE_FAULT=<point>:<n>[:<signal>]
// makes the n-th call of fault_point("<point>") in this process raise <signal> (KILL by default; TERM, INT, USR1),
// exactly where a preempted or killed job would stop. Unset, fault_point costs one branch.
namespace cm {

void fault_point(const char* point);

}  // namespace cm
