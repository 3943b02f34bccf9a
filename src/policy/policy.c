/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the table of policies and their names.
 */
#include <errno.h>
#include <string.h>

#include "policy/policy.h"

static const struct uspf_policy *const policies[USPF_NR_POLICIES] = {
	[USPF_POLICY_SPF] = &policy_spf,
	[USPF_POLICY_MMAP_LOCK] = &policy_mmap_lock,
	[USPF_POLICY_SPF_ADAPTIVE] = &policy_spf_adaptive,
	[USPF_POLICY_PERVMA_RWSEM] = &policy_pervma_rwsem,
	[USPF_POLICY_PERVMA_REFCNT] = &policy_pervma_refcnt,
	[USPF_POLICY_SPF_V12] = &policy_spf_v12,
};

const struct uspf_policy *policy_get(enum uspf_policy_id id)
{
	if ((unsigned int)id >= USPF_NR_POLICIES)
		return NULL;
	return policies[id];
}

const char *uspf_policy_name(enum uspf_policy_id p)
{
	const struct uspf_policy *pol = policy_get(p);

	return pol ? pol->name : NULL;
}

int uspf_policy_from_name(const char *name, enum uspf_policy_id *out)
{
	unsigned int i;

	if (!name || !out)
		return -EINVAL;
	for (i = 0; i < USPF_NR_POLICIES; i++) {
		if (!strcmp(name, policies[i]->name)) {
			*out = (enum uspf_policy_id)i;
			return 0;
		}
	}
	return -EINVAL;
}
