/*-------------------------------------------------------------------------
 *
 * domain.h
 *		E-mail domain parsing shared by domain.c and the users trigger.
 *
 * src/domain.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_DOMAIN_H
#define SCIM_DOMAIN_H

/*
 * The normalised (lower-case) domain of an e-mail address, palloc'd, or
 * NULL when the address is malformed (the rules of scim.email_domain).
 */
extern char *scim_email_domain_parse(const char *email, size_t len);

#endif							/* SCIM_DOMAIN_H */
