// The text table printed to the terminal, rendered from result records (DESIGN 3.5).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace cclab {

/// Comment lines stating the method and units, then the column header of a collective sweep.
std::string collective_table_header(const nlohmann::json& first_record, bool percentiles);
/// The transport column: the transport and, where the record says it, the wire in short
/// ("ucx:sysv+cma/tcp"; cclab/wire.h).
std::string transport_column(const nlohmann::json& record);
/// One row of a collective sweep.
std::string collective_table_row(const nlohmann::json& record, bool percentiles);

}  // namespace cclab
