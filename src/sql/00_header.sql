/* scim_provision--<version>.sql, assembled from src/sql/NN_*.sql by the Makefile */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scim_provision" to load this file. \quit
